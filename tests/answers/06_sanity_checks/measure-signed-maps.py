# wrong: the rank correlation of the signed maps, where the test compares their magnitudes
# feedback: magnitudes
# %% measure
digits, digit_labels = test_images[:16], test_labels[:16]
random_top = randomize_top(cnn, seed=0)
methods = {"gradient": attribution.gradient, "gradient × input": attribution.gradient_times_input}
similarity = {}
for name, method in methods.items():
    trained = method(cnn, digits, digit_labels)
    randomized = method(random_top, digits, digit_labels)
    similarity[name] = float(torch.as_tensor(rank_correlation(trained, randomized)).mean())
print({name: round(value, 3) for name, value in similarity.items()})
