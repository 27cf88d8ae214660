# right: a loop over the images, one .backward() each
# %% saliency
def saliency_map(model, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """max over channels of |dS_target / dI| for each image: [N, C, H, W] -> [N, H, W]."""
    maps = []
    for image, target in zip(images, targets, strict=True):
        x = image[None].clone().requires_grad_(True)
        model(x)[0, int(target)].backward()
        maps.append(x.grad[0].abs().max(dim=0).values)
    return torch.stack(maps)
