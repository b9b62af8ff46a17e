from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_segment_box")]

    operations = [
        migrations.AddField(model_name="video", name="visual_stage",
                            field=models.CharField(blank=True, max_length=32)),
        migrations.AddField(model_name="video", name="visual_progress",
                            field=models.FloatField(default=0.0)),
        migrations.AddField(model_name="video", name="visual_attempts",
                            field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name="video", name="audio_stage",
                            field=models.CharField(blank=True, max_length=32)),
        migrations.AddField(model_name="video", name="audio_progress",
                            field=models.FloatField(default=0.0)),
        migrations.AddField(model_name="video", name="audio_attempts",
                            field=models.PositiveIntegerField(default=0)),
    ]
