//! # Model: an MLP with exact gradients and Hessian-vector products
pub mod activation;
pub mod npz;
pub mod params;

pub use activation::Activation;
pub use params::Layout;
