"""The run's machinery, between the commands and the building blocks: devices and torchrun processes,
data loaders, optimizer and LR schedule, assembling a run, the training loop (`trainer.train`), checkpoints,
accuracy, console output."""
