"""Application stages used by the harness tests (a package on sys.path, named
by dotted class path in the pipeline policies)."""

import numpy as np

import daf
from daf.harness import ParallelProcessing, SerialProcessing


class ScaleSerial(SerialProcessing):
    defaults = {"factor": 2.0, "label": "scaled"}

    def preprocess(self, clipboard):
        visit = clipboard["jobIdentity"]["visit"]
        clipboard.put("factor", self.policy["factor"] * visit)

    def postprocess(self, clipboard):
        clipboard.put("label", f"{self.policy['label']}-{self.run_id}")


class ScaleParallel(ParallelProcessing):
    defaults = {"side": 8, "failVisit": -1}

    def setup(self):
        self.calls = 0

    def process(self, clipboard):
        self.calls += 1
        visit = clipboard["jobIdentity"]["visit"]
        if visit == self.policy["failVisit"] and self.rank == 1:
            raise ValueError(f"bad pixels in visit {visit}")
        n = self.policy["side"]
        img = daf.Image(np.full((n, n), float(visit * 10 + self.rank), np.float32))
        clipboard.put("image", img)
        clipboard.put("sum", float(img.array.sum()))
        clipboard.put("rank", self.rank)
        clipboard.put("calls", self.calls)
        clipboard.put("py", {"a python": "object"})


class RecordFailure(ParallelProcessing):
    """The failure stage: appends what failed to the file `log` names."""

    def process(self, clipboard):
        with open(self.policy["log"], "a") as f:
            f.write(f"{self.rank} {clipboard['failedInStage']} {clipboard['failureType']}\n")


class MakeImage(ParallelProcessing):
    """Gives each slice its own data id (``ccd`` = the slice's rank) and an
    image of ``visit * 10 + rank`` for the butler-method OutputStage."""

    defaults = {"side": 8}

    def process(self, clipboard):
        visit = clipboard["jobIdentity"]["visit"]
        clipboard.put_job_identity("jobIdentity", {"visit": visit, "ccd": self.rank})
        n = self.policy["side"]
        clipboard.put("image", daf.Image(np.full((n, n), visit * 10 + self.rank, np.float32)))


class CheckImage(ParallelProcessing):
    """Reports what the butler-method InputStage read back (``back``)."""

    def process(self, clipboard):
        back = clipboard["back"]
        assert isinstance(back, daf.Image), type(back)
        clipboard.put("back_sum", float(back.array.sum()))
        clipboard.put("back_dtype", back.dtype)
        clipboard.put("back_shape", "%dx%d" % back.shape)
