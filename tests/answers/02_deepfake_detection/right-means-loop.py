# right: a loop over the two classes, its own log_spectrum, the channel mean taken last
# %% means
means = []
for label in (0, 1):
    chosen = log_spectrum(test_images[test_labels == label]).mean(dim=0)
    means.append(torch.fft.fftshift(chosen, dim=(-2, -1)).mean(dim=0))
mean_real, mean_fake = means
difference = mean_fake - mean_real
