//! What one feature means and does, from the weights: its card, the logit lens and token
//! activations, steering generation, and attribution of a prediction to features.

pub mod attribute;
pub mod card;
pub mod lens;
pub mod steer;
