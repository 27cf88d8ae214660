# wrong, visibly: the mean spectra not shifted, the zero frequency left in the corner
# feedback: centre
# %% means
spectra = frequency.log_spectrum(test_images).mean(dim=1)
mean_real = spectra[test_labels == 0].mean(dim=0)
mean_fake = spectra[test_labels == 1].mean(dim=0)
difference = mean_fake - mean_real
