//! Gated SAEs (Rajamanoharan et al. 2024; SAELens's `GatedSAE`, dictionary_learning's
//! `GatedAutoEncoder`) as the JumpReLU SAE each one equals, so every encode path here
//! (blocks, single features, the dashboards' screen) runs them unchanged.
//!
//! A gated SAE fires feature i where the gate `x W_i + b_gate_i > 0` and gives it
//! `relu(x W_i e^{r_i} + b_mag_i)`. With `W'_i = W_i e^{r_i}` and `b'_i = b_mag_i`, the
//! magnitude pre-activation is `z_i = x W'_i + b'_i`, and the gate holds exactly where
//! `z_i > b_mag_i - b_gate_i e^{r_i}` (multiplying the gate by `e^{r_i} > 0`): a JumpReLU
//! with that threshold (`relu(z) * (z > θ)`, as `Sae::encode` computes it).

use tch::Tensor;

/// (W_enc', b_enc', threshold) of the JumpReLU equal to the gated SAE with encoder `w_enc`
/// [d, d_sae], `b_gate`, `r_mag` and `b_mag` [d_sae].
pub fn as_jumprelu(w_enc: &Tensor, b_gate: &Tensor, r_mag: &Tensor, b_mag: &Tensor) -> (Tensor, Tensor, Tensor) {
    let scale = r_mag.exp();
    let w = (w_enc * scale.unsqueeze(0)).contiguous();
    let threshold = b_mag - b_gate * &scale;
    (w, b_mag.copy(), threshold)
}
