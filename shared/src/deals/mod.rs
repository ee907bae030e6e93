//! Escrow deals (SPEC part A, seed 003).

pub mod commission;

pub use commission::{Breakdown, CommissionTable, Payer};
