# wrong: the mean spectra of the training images where the task asks for the test images
# feedback: test images
# %% means
spectra = torch.fft.fftshift(frequency.log_spectrum(images).mean(dim=1), dim=(-2, -1))
mean_real = spectra[labels == 0].mean(dim=0)
mean_fake = spectra[labels == 1].mean(dim=0)
difference = mean_fake - mean_real
