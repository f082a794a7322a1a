//! The built-in stages: [`io`] (InputStage, OutputStage), [`symlink`]
//! (SymLinkStage), [`event`] (EventStage), and, with the `testing`
//! feature, small `testing` stages used by tests, benchmarks and the MPI check.

pub mod event;
pub mod io;
pub mod symlink;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use crate::stage::{NoOpParallel, NoOpSerial, StageRegistry};

/// Registers every built-in stage under its daf name and its LSST class path.
pub(crate) fn register_builtin(r: &mut StageRegistry) {
    macro_rules! serial {
        ($t:ty, $($name:expr),+) => {
            $( r.register_serial($name, |_| Ok(Box::new(<$t>::default()))); )+
        };
    }
    macro_rules! parallel {
        ($t:ty, $($name:expr),+) => {
            $( r.register_parallel($name, |_| Ok(Box::new(<$t>::default()))); )+
        };
    }
    serial!(
        NoOpSerial,
        "NoOpSerial",
        "lsst.pex.harness.stage.NoOpSerialProcessing"
    );
    parallel!(
        NoOpParallel,
        "NoOpParallel",
        "lsst.pex.harness.stage.NoOpParallelProcessing"
    );
    serial!(
        io::InputStageSerial,
        "InputStageSerial",
        "lsst.pex.harness.IOStage.InputStageSerial"
    );
    parallel!(
        io::InputStageParallel,
        "InputStageParallel",
        "lsst.pex.harness.IOStage.InputStageParallel"
    );
    serial!(
        io::OutputStageSerial,
        "OutputStageSerial",
        "lsst.pex.harness.IOStage.OutputStageSerial"
    );
    parallel!(
        io::OutputStageParallel,
        "OutputStageParallel",
        "lsst.pex.harness.IOStage.OutputStageParallel"
    );
    serial!(
        symlink::SymLinkStageSerial,
        "SymLinkStageSerial",
        "lsst.pex.harness.SymLinkStage.SymLinkStageSerial"
    );
    parallel!(
        symlink::SymLinkStageParallel,
        "SymLinkStageParallel",
        "lsst.pex.harness.SymLinkStage.SymLinkStageParallel"
    );
    serial!(
        event::EventStageSerial,
        "EventStageSerial",
        "lsst.pex.harness.EventStage.EventStageSerial"
    );
    parallel!(
        event::EventStageParallel,
        "EventStageParallel",
        "lsst.pex.harness.EventStage.EventStageParallel"
    );
    #[cfg(any(test, feature = "testing"))]
    parallel!(testing::FailParallel, "daf.harness.FailParallel");
    #[cfg(any(test, feature = "testing"))]
    serial!(testing::FailSerial, "daf.harness.FailSerial");
    #[cfg(any(test, feature = "testing"))]
    parallel!(testing::ShareParallel, "daf.harness.ShareParallel");
    #[cfg(any(test, feature = "testing"))]
    parallel!(testing::RecordParallel, "daf.harness.RecordParallel");
}
