# wrong: the penalty's gradient written by hand, with the factor 2 lost
# feedback: maximum of eq. 4
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
        (gradient,) = torch.autograd.grad(score, image)
        image = (image + lr * (gradient - l2 * image)).detach()
    return image.detach(), scores
