# right: one image at a time, the targets taken from the labels (all zeros)
# %% zero
zeros = test_images[test_labels == 0][:6]
zero_labels = test_labels[test_labels == 0][:6]
pairs = zip(zeros, zero_labels, strict=True)
zero_ig = torch.cat([integrated_gradients(cnn, z[None], t[None], steps=32) for z, t in pairs])
