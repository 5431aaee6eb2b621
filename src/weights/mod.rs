//! Weight files as they ship: safetensors (memory-mapped), sharded checkpoints,
//! `torch.save` archives read through a restricted unpickler that never runs their code, and
//! NumPy's `.npz` (Gemma Scope's).

pub mod arrays;
pub mod checkpoint;
pub mod npz;
pub mod pickle;
pub mod tensors;
pub mod torch_pt;
pub mod zip;
