"""The gradient lab: hand-derived backprop (`backprop`), finite-difference checks (`gradient_check`), training by
hand (`hand_training`), loss landscapes (`landscape`) and backprop timing (`backprop_timing`)."""
