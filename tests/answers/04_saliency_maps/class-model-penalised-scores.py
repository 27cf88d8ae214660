# wrong: records the objective, penalty included, where the task asks for the scores S_c
# feedback: without the penalty
# %% class-model
def class_model(model, target: int, shape, l2: float, steps: int, lr: float):
    """Gradient ascent on S_target(I) - l2 * ||I||^2 from zero: (image [1, *shape], scores)."""
    image = torch.zeros(1, *shape)
    scores = []
    for step in range(steps + 1):
        image.requires_grad_(True)
        objective = model(image)[0, target] - l2 * image.pow(2).sum()
        scores.append(objective.item())
        if step == steps:
            break
        (gradient,) = torch.autograd.grad(objective, image)
        image = (image + lr * gradient).detach()
    return image.detach(), scores
