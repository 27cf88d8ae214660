# right: torch's SGD (no momentum) maximising the objective
# %% class-model
def class_model(model, target: int, shape, l2: float, steps: int, lr: float):
    """Gradient ascent on S_target(I) - l2 * ||I||^2 from zero: (image [1, *shape], scores)."""
    image = torch.zeros(1, *shape, requires_grad=True)
    optimizer = torch.optim.SGD([image], lr=lr, maximize=True)
    scores = []
    for _ in range(steps):
        score = model(image)[0, target]
        scores.append(score.item())
        optimizer.zero_grad()
        (score - l2 * (image**2).sum()).backward()
        optimizer.step()
    with torch.no_grad():
        scores.append(model(image)[0, target].item())
    return image.detach(), scores
