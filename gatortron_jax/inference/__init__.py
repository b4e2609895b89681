"""Running a model dir: NER prediction (``ner_predict``), sentence/pair/QA prediction
(``tasks``), evaluation of fine-tuned dirs with the recipe (``evaluate``), embeddings and
de-identification. Fine-tuned heads are rebuilt through ``finetuning.adapters``.

Imports: everything below it (``core`` … ``finetuning``, ``convert``); nothing imports it but ``cli``.
"""
