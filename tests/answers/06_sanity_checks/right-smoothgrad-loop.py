# right: one pass per copy, the gradients added up in float64 and divided by n
# %% smoothgrad
def smoothgrad(
    model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The mean gradient of each image's target logit over its noisy copies (eq. 6.1)."""
    copies = noise.shape[1]
    total = torch.zeros_like(images, dtype=torch.float64)
    for k in range(copies):
        points = (images + noise[:, k]).requires_grad_(True)
        chosen = model(points)[torch.arange(len(images)), targets]
        total += torch.autograd.grad(chosen.sum(), points)[0].double()
    return (total / copies).float()
