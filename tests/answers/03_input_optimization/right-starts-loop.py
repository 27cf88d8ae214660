# right: a loop over the four images, the logits from its own neuron_activation
# %% starts
noise = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(3))
from_ones = favourite_input(cnn, 6, torch.ones(1, 1, 28, 28))
from_random = favourite_input(cnn, 6, noise)
logits = {}
for name, x in [
    ("ones start", torch.ones(1, 1, 28, 28)),
    ("random start", noise),
    ("from ones", from_ones),
    ("from random", from_random),
]:
    logits[name] = float(neuron_activation(cnn, x.to(device), 6).detach()[0])
print({name: round(value, 1) for name, value in logits.items()})
