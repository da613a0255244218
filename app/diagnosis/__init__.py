"""The engine: from an `XRay` to a `Diagnosis`. Never imports GUI code."""

from app.diagnosis.diagnoser import DEFAULT_MODELS_DIR, Diagnoser, Outcome
from app.diagnosis.value import NOTICE, Diagnosis, StudyDiagnosis, Verdict

__all__ = ["DEFAULT_MODELS_DIR", "NOTICE", "Diagnoser", "Diagnosis", "Outcome", "StudyDiagnosis", "Verdict"]
