//! Saving and loading generators: weights as safetensors, architecture as JSON.
