# wrong: the penalty with the norm itself, not its square
# feedback: squared norm
# %% class-model
def class_model(model, target: int, shape, l2: float, steps: int, lr: float):
    """Gradient ascent on S_target(I) - l2 * ||I||^2 from zero: (image [1, *shape], scores)."""
    image = torch.zeros(1, *shape)
    scores = []
    for step in range(steps + 1):
        image.requires_grad_(True)
        score = model(image)[0, target]
        scores.append(score.item())
        if step == steps:
            break
        objective = score - l2 * image.norm()
        (gradient,) = torch.autograd.grad(objective, image)
        image = (image + lr * gradient).detach()
    return image.detach(), scores
