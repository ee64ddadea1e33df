"""Looking at representations and data: what a network's layers make of the test digits (`embeddings`: activations,
PCA and t-SNE maps) and what the images themselves hold (`statistics`: class means, pixel spread, nearest
neighbours)."""
