"""Supervised fine-tuning: ONE loop (``loop.finetune``) for every task kind, with one adapter
per kind (``adapters/``: token classification for NER/de-id, sequence classification and
regression for RE/NLI/STS, span QA) that encodes the data, builds the head, names the loss and
predict functions, scores dev predictions and writes its config.json section.

Also here: the configs (``config``), the task registries (``ner_tasks`` for annotated notes,
``task_registry`` for example files), featurization (``windowing`` for NER windows,
``relations`` for RE candidates), the step machinery (``supervised``) and the recipe
fingerprints (``recipe``).

Imports: ``core``, ``annotations``, ``text``, ``models``, ``evaluation``; never ``inference``
(prediction and evaluation of a fine-tuned dir live there and import the adapters).
"""
