"""AOT planning: lower and compile the real train / fine-tune / predict step for a simulated CPU
mesh or, deviceless, for a GPU or TPU target, and report per-device memory, fits-or-not, FLOPs,
collectives and a roofline estimate.

Imports: ``core``, ``models``, ``pretraining``, ``finetuning`` (the tagger step); ``targets``
needs the optional gpu-plan / tpu-plan extras only when a target is compiled for.
"""
