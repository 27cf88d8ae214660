# wrong, visibly: the trained CNN compared with itself, the randomised copy never used
# feedback: randomised copy
# %% measure
digits, digit_labels = test_images[:16], test_labels[:16]
methods = {"gradient": attribution.gradient, "gradient × input": attribution.gradient_times_input}
similarity = {}
for name, method in methods.items():
    trained = method(cnn, digits, digit_labels).abs()
    again = method(cnn, digits, digit_labels).abs()
    similarity[name] = float(torch.as_tensor(rank_correlation(trained, again)).mean())
print({name: round(value, 3) for name, value in similarity.items()})
