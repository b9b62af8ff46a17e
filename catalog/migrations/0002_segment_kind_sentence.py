from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="segment",
            name="kind",
            field=models.CharField(
                choices=[("speech", "Speech"), ("sentence", "Spoken sentence"),
                         ("ocr", "On-screen text"), ("visual", "Visual"),
                         ("metadata", "Metadata")],
                max_length=16,
            ),
        ),
    ]
