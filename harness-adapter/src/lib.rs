//! # daf-harness
//!
//! A minimal pipeline harness — one master Pipeline and N Slice workers, on
//! threads or (feature `mpi`) on MPI ranks — with the IO stages that plug the
//! butler and persistence into it.
//!
//! Depends on every other daf crate.
