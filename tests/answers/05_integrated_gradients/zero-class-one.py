# wrong, visibly: the attributions of class 1 (torch.ones for the targets) instead of 0
# %% zero
zeros = test_images[test_labels == 0][:6]
zero_ig = integrated_gradients(cnn, zeros, torch.ones(6, dtype=torch.long), steps=32)
