//! # Data (temporary stub until the loaders land)
pub mod batches;
use ndarray::Array2;
/// Rows and labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Features (n_samples, n_features).
    pub x: Array2<f64>,
    /// Labels.
    pub y: Vec<usize>,
}
/// Train and validation sets.
#[derive(Debug, Clone)]
pub struct Data {
    /// Training rows.
    pub train: Dataset,
    /// Validation rows.
    pub validation: Dataset,
    /// Features per row.
    pub n_features: usize,
    /// Classes K.
    pub n_classes: usize,
}
