# right: one digit at a time, the correlations averaged with statistics.fmean
# %% measure
import statistics

digits, digit_labels = test_images[:16], test_labels[:16]
random_top = randomize_top(cnn, seed=0)
similarity = {}
for name in ("gradient", "gradient × input"):
    method = attribution.gradient if name == "gradient" else attribution.gradient_times_input
    values = []
    for digit, label in zip(digits, digit_labels, strict=True):
        a = method(cnn, digit[None], label[None]).abs()
        b = method(random_top, digit[None], label[None]).abs()
        values.append(float(torch.as_tensor(rank_correlation(a, b))[0]))
    similarity[name] = statistics.fmean(values)
print({name: round(value, 3) for name, value in similarity.items()})
