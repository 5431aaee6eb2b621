//! Weight files as they ship: safetensors (memory-mapped), sharded checkpoints, and
//! `torch.save` archives read through a restricted unpickler that never runs their code.

pub mod checkpoint;
pub mod pickle;
pub mod tensors;
pub mod torch_pt;
