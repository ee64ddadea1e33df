"""The playground's engine: the user's own inputs, prepared as the network's training images were."""
