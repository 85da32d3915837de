from django.db import models


class Note(models.Model):
    source = models.CharField(max_length=16)
    text = models.CharField(max_length=200)
