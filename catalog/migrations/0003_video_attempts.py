from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_segment_kind_sentence")]

    operations = [
        migrations.AddField(
            model_name="video",
            name="attempts",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
