"""The engine calls the application makes, gathered in one replaceable object.

:class:`Engine` forwards to :mod:`core` (workflow, readers, project files, demo cohorts),
importing each module when first needed so that starting the window stays fast. Tests hand
the session an engine whose ``make_run`` returns a fake run, so widgets and threads are
exercised without real training.
"""

from __future__ import annotations

__all__ = ["Engine"]


class Engine:
    """Everything :class:`dpsom_gui.session.Session` asks of :mod:`core`."""

    # ---------------------------------------------------------------- set-up
    #: What :meth:`import_stack` loads, in order, with the words a splash screen shows.
    STACK = (("torch", "Loading PyTorch…"),
             ("core.workflow", "Loading the training engine…"),
             ("optimiser", "Preparing the optimiser…"))

    def import_stack(self, report=None) -> None:
        """Import the training stack (PyTorch, :mod:`core.workflow`, torch's optimiser and
        compiler modules); ``report(text)`` is called before each part.

        These imports hold the interpreter lock for seconds (the first optimiser alone imports
        several hundred modules of torch's compiler stack). Run on a thread beside the window
        they froze it for up to 1.9 s at a time, so :func:`dpsom_gui.app.main` calls this on
        the GUI thread before the window shows, behind a splash screen.
        """
        for part, words in self.STACK:
            if report is not None:
                report(words)
            if part == "torch":
                import torch  # noqa: F401
            elif part == "core.workflow":
                import core.workflow  # noqa: F401
            else:
                import torch

                torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        self._warm = True

    def warm_up(self) -> None:
        """:meth:`import_stack` without messages (scripts and the screenshots call this)."""
        self.import_stack()

    def is_ready(self) -> bool:
        """True once :meth:`import_stack` has run, so that torch calls (an estimate) no longer
        wait on imports that hold the interpreter lock for seconds."""
        return getattr(self, "_warm", False)

    # ---------------------------------------------------------------- models
    def make_run(self, dataset, config, preprocessing=None):
        """A new, untrained ``core.workflow.ModelRun``."""
        from core.workflow import ModelRun

        return ModelRun(dataset, config, preprocessing)

    def run_from_project(self, project):
        """The ``ModelRun`` stored in a loaded project (trained or partly trained)."""
        from core.workflow import ModelRun

        return ModelRun.from_project(project)

    def propose_config(self, dataset, preset: str = "quick"):
        """Settings suited to ``dataset`` by the rule ``dpsom train`` uses (``core.defaults``)."""
        return self.propose_settings(dataset, preset).config

    def grid_problem(self, n_points: int, grid, unit: str = "rows") -> str:
        """Why ``grid`` cannot be trained on ``n_points`` points ("" when it can): the same
        check a run makes before it starts (``core.data.validation.check_grid_size``)."""
        from core.data.validation import check_grid_size
        from core.errors import InputError

        try:
            check_grid_size(int(n_points), grid, what="This data set", unit=unit)
        except InputError as exc:
            return str(exc)
        return ""

    def propose_settings(self, dataset, preset: str = "quick"):
        """The rule's whole proposal: ``config``, ``preprocessing`` and plain-language ``reasons``.

        Kept per data set and preset: the rule profiles every value, and the window asks
        again at each change of the settings. New data are a new ``Dataset`` object, so the
        object (held weakly, with its shape in case it was edited) is the key.
        """
        import threading
        import weakref

        from core.workflow import propose_settings

        lock = self.__dict__.setdefault("_proposals_lock", threading.Lock())
        key = (id(dataset), preset, getattr(getattr(dataset, "values", None), "shape", None))
        with lock:  # the loading thread proposes too
            cache = self.__dict__.setdefault("_proposals", {})
            held = cache.get(key)
            if held is not None and held[0]() is dataset:
                return held[1]
        proposal = propose_settings(dataset, preset=preset)
        try:
            ref = weakref.ref(dataset, lambda _ref, key=key: cache.pop(key, None))
        except TypeError:  # takes no weak reference: not kept
            return proposal
        with lock:
            cache[key] = (ref, proposal)
        return proposal

    def make_config(self, model: str, preset: str, **changes):
        from core.config import make_config

        return make_config(model, preset, **changes)

    def available_devices(self) -> list[dict]:
        """Devices to offer (dicts with ``name``, ``label``, ``memory_bytes``)."""
        from core.workflow import available_devices

        return list(available_devices())

    def umatrix(self, prototypes, grid):
        from core.analysis import umatrix

        return umatrix(prototypes, grid)

    # ---------------------------------------------------------------- files
    def load_project(self, path):
        """The project in ``path``; its data's settings proposal is worked out too, since this
        runs on the loading thread and the window asks for it (grid advice) right after."""
        from core.io.project_h5 import load_project

        project = load_project(path)
        if project.dataset is not None:
            try:
                self.propose_settings(project.dataset, (project.config or {}).get("preset", "quick"))
            except Exception as exc:  # noqa: BLE001 - the window asks again and reports then
                import logging

                logging.getLogger(__name__).warning("no settings proposal: %s", type(exc).__name__)
        return project

    def save_project(self, path, project):
        from core.io.project_h5 import save_project

        return save_project(path, project)

    def empty_project(self, config, dataset, preprocessing=None, column_roles=None):
        """A project holding data and settings but no trained model."""
        from core.io.project_h5 import Project

        return Project(config=config.to_dict(), dataset=dataset, preprocessor=preprocessing,
                       column_roles=dict(column_roles or {}),
                       warnings=list(getattr(dataset, "warnings", []) or []))

    def inspect_file(self, path):
        from core.data.readers import inspect_file

        return inspect_file(path)

    def read_data(self, path, **options):
        from core.data.readers import read_data

        return read_data(path, **options)

    def resolve_preprocessing(self, dataset, preprocessing: dict | None = None) -> tuple[dict, str]:
        """``preprocessing`` with an automatic scaling replaced by the one the rule of
        :mod:`core.defaults` chooses for ``dataset`` (what ``dpsom train`` and a run use),
        and the reason in plain words ("" for a scaling the user chose).

        Returns
        -------
        options : dict
            A copy of ``preprocessing`` (``{}`` for None) whose ``scaling`` is never "auto".
        reason : str
        """
        options = dict(preprocessing or {})
        if options.get("scaling") not in (None, "auto"):
            return options, ""
        proposal = self.propose_settings(dataset)
        options["scaling"] = proposal.preprocessing["scaling"]
        # The rule gives the scaling's reason first (core.defaults.propose).
        return options, proposal.reasons[0] if proposal.reasons else ""

    def preprocessing_report(self, dataset, **options):
        """Table (DataFrame) of what preprocessing will do to each variable (an automatic
        scaling is resolved first, see :meth:`resolve_preprocessing`)."""
        from core.data.preprocessing import Preprocessor

        options, _ = self.resolve_preprocessing(dataset, options)
        return Preprocessor(**options).fit(dataset).report(dataset)

    def demo(self, size: str = "demo"):
        """The built-in synthetic ICU cohort ("demo" or the small "test" size)."""
        from core.data.demo import demo_icu

        return demo_icu(size)

    def demo_table(self):
        from core.data.demo import demo_table

        return demo_table()
