"""The debouncer's timing and coalescing rules, on a fake clock."""

from __future__ import annotations

import pytest

from gql_media.core.debounce import Debouncer, Fire, PathChange, PathChangeKind
from gql_media.core.models import SyncTarget

ADDED, MODIFIED, DELETED = PathChangeKind.ADDED, PathChangeKind.MODIFIED, PathChangeKind.DELETED
ROOT = "/lib"
OTHER_ROOT = "/other"


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s

    def advance_ms(self, ms: float) -> None:
        self.now_s += ms / 1000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **kwargs: int) -> Debouncer:
    return Debouncer([ROOT, OTHER_ROOT], clock=clock, **kwargs)  # type: ignore[arg-type]


def file(kind: PathChangeKind, path: str) -> PathChange:
    return PathChange(kind, path, is_dir=False)


def folder(kind: PathChangeKind, path: str) -> PathChange:
    return PathChange(kind, path, is_dir=True)


# --- timing -------------------------------------------------------------------------------------


def test_nothing_pending_means_nothing_due(clock: FakeClock) -> None:
    debouncer = make(clock)
    assert debouncer.due_at() is None
    assert not debouncer.take()


def test_fires_after_settle_of_quiet(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300)
    debouncer.add([file(ADDED, "/lib/a/x.mp4")])
    assert debouncer.due_at() == pytest.approx(clock.now_s + 0.3)
    clock.advance_ms(299)
    assert not debouncer.take().targets
    clock.advance_ms(1)
    assert debouncer.take().targets == (SyncTarget("/lib/a", recursive=False),)
    assert not debouncer.has_pending
    assert not debouncer.take().targets


def test_each_change_restarts_the_quiet_period(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300, max_wait_ms=3000)
    debouncer.add([file(ADDED, "/lib/a/1.mp4")])
    for i in range(2, 6):
        clock.advance_ms(200)
        debouncer.add([file(ADDED, f"/lib/a/{i}.mp4")])
        assert not debouncer.take().targets
    clock.advance_ms(299)
    assert not debouncer.take().targets
    clock.advance_ms(1)
    assert debouncer.take().targets == (SyncTarget("/lib/a", recursive=False),)


def test_max_wait_caps_a_change_that_never_settles(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300, max_wait_ms=1000)
    start = clock.now_s
    debouncer.add([file(MODIFIED, "/lib/a/copying.mp4")])
    fired_at = None
    for _ in range(20):  # a change every 100 ms for 2 s: never quiet
        clock.advance_ms(100)
        if debouncer.take().targets:
            fired_at = clock.now_s
            break
        debouncer.add([file(MODIFIED, "/lib/a/copying.mp4")])
    assert fired_at == pytest.approx(start + 1.0)
    # The window after a fire starts afresh with the next change.
    debouncer.add([file(MODIFIED, "/lib/a/copying.mp4")])
    assert debouncer.due_at() == pytest.approx(clock.now_s + 0.3)


def test_changes_outside_the_roots_are_ignored(clock: FakeClock) -> None:
    debouncer = make(clock)
    debouncer.add([file(ADDED, "/elsewhere/x.mp4"), file(ADDED, "/library/x.mp4")])
    assert debouncer.due_at() is None


# --- coalescing ---------------------------------------------------------------------------------


def fire_now(debouncer: Debouncer, clock: FakeClock) -> Fire:
    clock.advance_ms(10_000)
    return debouncer.take()


def shallow(path: str) -> SyncTarget:
    return SyncTarget(path, recursive=False)


def deep(path: str) -> SyncTarget:
    return SyncTarget(path, recursive=True)


# Each rule of coalescing: the batches of changes a debouncer gets, and the targets it fires.
COALESCING = [
    pytest.param(
        [
            [
                file(ADDED, "/lib/a/1.mp4"),
                file(MODIFIED, "/lib/a/2.mp4"),
                file(DELETED, "/lib/a/3.mp4"),
                file(ADDED, "/lib/top.mkv"),
                file(ADDED, "/other/b/c/4.webm"),
            ]
        ],
        (shallow("/lib"), shallow("/lib/a"), shallow("/other/b/c")),
        id="file-changes-target-their-folder-shallow-once",
    ),
    # What `mv tree /lib/new` or `mkdir -p` with files looks like: the top folder, maybe a few children.
    pytest.param(
        [
            [
                file(ADDED, "/lib/new/sub/deep/x.mp4"),
                folder(ADDED, "/lib/new"),
                folder(ADDED, "/lib/new/sub"),
                file(ADDED, "/lib/new/y.mp4"),
                file(ADDED, "/lib/newer/z.mp4"),  # a sibling sharing a prefix is not a child
            ]
        ],
        (deep("/lib/new"), shallow("/lib/newer")),
        id="an-added-folder-is-rescanned-whole-and-swallows-its-children",
    ),
    pytest.param(
        [[PathChange(DELETED, "/lib/old", is_dir=None), file(DELETED, "/lib/old/a.mp4")]],
        (deep("/lib/old"),),
        id="a-gone-path-of-unknown-kind-is-rescanned-as-a-folder",
    ),
    pytest.param([[folder(MODIFIED, "/lib/a")]], (shallow("/lib/a"),), id="a-modified-folder-is-shallow"),
    pytest.param(
        [[folder(MODIFIED, "/lib/a")], [folder(ADDED, "/lib/a")]],
        (deep("/lib/a"),),
        id="the-same-path-seen-twice-keeps-the-widest-target",
    ),
    pytest.param(
        [[file(ADDED, "/lib/a/x.mp4"), folder(ADDED, "/lib/a/b")]],
        (shallow("/lib/a"), deep("/lib/a/b")),
        id="a-shallow-parent-and-a-recursive-child-both-stay",
    ),
]


@pytest.mark.parametrize(("batches", "targets"), COALESCING)
def test_coalescing(clock: FakeClock, batches: list[list[PathChange]], targets: tuple[SyncTarget, ...]) -> None:
    """What a debouncer of ``ROOT`` and ``OTHER_ROOT`` fires once these batches of changes settled."""
    debouncer = make(clock)
    for batch in batches:
        debouncer.add(batch)
    assert fire_now(debouncer, clock).targets == targets


def test_nested_root_claims_its_own_paths(clock: FakeClock) -> None:
    debouncer = Debouncer(["/lib", "/lib/inner"], clock=clock, max_pending=2)
    debouncer.add([file(ADDED, "/lib/inner/a/1.mp4"), file(ADDED, "/lib/inner/a/2.mp4")])
    debouncer.add([file(ADDED, "/lib/inner/a/3.mp4")])
    assert fire_now(debouncer, clock).targets == (SyncTarget("/lib/inner", recursive=True),)


# --- bounded pending set ------------------------------------------------------------------------


def test_overflow_collapses_to_rescans_of_the_roots_concerned(clock: FakeClock) -> None:
    debouncer = make(clock, max_pending=3)
    debouncer.add([file(ADDED, f"/lib/a/{i}.mp4") for i in range(3)])
    assert debouncer.overflows == 0
    debouncer.add([file(ADDED, "/lib/b/x.mp4")])
    assert debouncer.overflows == 1
    # More changes in a collapsed root are covered; another root still coalesces normally.
    debouncer.add([file(ADDED, f"/lib/c/{i}.mp4") for i in range(100)])
    debouncer.add([file(ADDED, "/other/d/y.mp4")])
    assert debouncer.overflows == 1
    assert debouncer.pending_paths == 2
    fire = fire_now(debouncer, clock)
    assert fire.targets == (SyncTarget("/lib", recursive=True), SyncTarget("/other/d", recursive=False))
    assert fire.files_to_look == ("/other/d/y.mp4",)
    # After a fire the bound applies afresh.
    debouncer.add([file(ADDED, "/lib/a/again.mp4")])
    assert fire_now(debouncer, clock).targets == (SyncTarget("/lib/a", recursive=False),)


def test_overflow_takes_every_root_with_pending_changes(clock: FakeClock) -> None:
    debouncer = make(clock, max_pending=2)
    debouncer.add([file(ADDED, "/other/x.mp4"), file(ADDED, "/lib/a/1.mp4"), file(ADDED, "/lib/a/2.mp4")])
    assert debouncer.overflows == 1
    assert fire_now(debouncer, clock).targets == (
        SyncTarget("/lib", recursive=True),
        SyncTarget("/other", recursive=True),
    )


def test_a_burst_far_past_the_bound_stays_small(clock: FakeClock) -> None:
    debouncer = make(clock, max_pending=100)
    debouncer.add([file(ADDED, f"/lib/d{i % 500}/{i}.mp4") for i in range(50_000)])
    assert debouncer.pending_paths == 1
    assert fire_now(debouncer, clock).targets == (SyncTarget("/lib", recursive=True),)


def test_add_targets_requeues_for_the_next_quiet_period(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300)
    debouncer.add_targets([SyncTarget("/lib/a", recursive=False), SyncTarget("/nowhere", recursive=True)])
    clock.advance_ms(300)
    assert debouncer.take().targets == (SyncTarget("/lib/a", recursive=False),)


def test_discard_forgets_everything(clock: FakeClock) -> None:
    debouncer = make(clock)
    debouncer.add([file(ADDED, "/lib/a/x.mp4")])
    debouncer.discard()
    assert debouncer.due_at() is None
    assert debouncer.pending_paths == 0


# --- files still growing ------------------------------------------------------------------------


def test_a_file_that_kept_still_is_done_after_file_settle_ms(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300, file_settle_ms=500)
    debouncer.add([file(ADDED, "/lib/a/x.mp4")])
    clock.advance_ms(300)
    fire = debouncer.take()
    assert fire.files_to_look == ("/lib/a/x.mp4",)
    debouncer.observe({"/lib/a/x.mp4": (100, 1)})
    # Looked at again every quiet period, without any new event, and never synced again while still.
    for _ in range(2):
        assert debouncer.due_at() == pytest.approx(clock.now_s + 0.3)
        clock.advance_ms(300)
        assert debouncer.take() == Fire((), ("/lib/a/x.mp4",))
        debouncer.observe({"/lib/a/x.mp4": (100, 1)})
    assert debouncer.due_at() is None


def test_a_file_still_growing_is_targeted_again_until_it_settles(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300, file_settle_ms=500)
    debouncer.add([file(ADDED, "/lib/a/x.mp4")])
    clock.advance_ms(300)
    debouncer.take()
    debouncer.observe({"/lib/a/x.mp4": (100, 1)})
    clock.advance_ms(300)
    assert debouncer.take().files_to_look == ("/lib/a/x.mp4",)
    # Kept still for one quiet period only: not done yet (a poller may have missed a write).
    debouncer.observe({"/lib/a/x.mp4": (100, 1)})
    clock.advance_ms(300)
    assert debouncer.take() == Fire((), ("/lib/a/x.mp4",))
    debouncer.observe({"/lib/a/x.mp4": (200, 2)})  # grew, and no event said so
    clock.advance_ms(300)
    fire = debouncer.take()
    assert fire.targets == (SyncTarget("/lib/a", recursive=False),)
    assert fire.files_to_look == ("/lib/a/x.mp4",)
    debouncer.observe({"/lib/a/x.mp4": (200, 2)})
    clock.advance_ms(300)
    assert debouncer.take() == Fire((), ("/lib/a/x.mp4",))
    debouncer.observe({"/lib/a/x.mp4": (200, 2)})  # still for 600 ms now
    assert debouncer.due_at() is None


def test_a_new_event_makes_the_next_look_a_first_look(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300)
    debouncer.add([file(ADDED, "/lib/a/x.mp4")])
    clock.advance_ms(300)
    debouncer.take()
    debouncer.observe({"/lib/a/x.mp4": (100, 1)})
    debouncer.add([file(MODIFIED, "/lib/a/x.mp4")])
    clock.advance_ms(300)
    fire = debouncer.take()
    assert fire.targets == (SyncTarget("/lib/a", recursive=False),)
    # The sync that fire starts sees the new size: a changed look is not a reason to sync again.
    debouncer.observe({"/lib/a/x.mp4": (500, 5)})
    clock.advance_ms(300)
    assert debouncer.take() == Fire((), ("/lib/a/x.mp4",))
    debouncer.observe({"/lib/a/x.mp4": (500, 5)})
    clock.advance_ms(300)
    assert not debouncer.take().targets


def test_a_vanished_file_is_forgotten(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300)
    debouncer.add([file(ADDED, "/lib/a/x.mp4")])
    clock.advance_ms(300)
    debouncer.take()
    debouncer.observe({"/lib/a/x.mp4": None})
    assert debouncer.due_at() is None


def test_folders_and_deletions_are_not_looked_at(clock: FakeClock) -> None:
    debouncer = make(clock)
    debouncer.add([folder(ADDED, "/lib/new"), file(DELETED, "/lib/a/x.mp4")])
    assert fire_now(debouncer, clock).files_to_look == ()


def test_rejects_nonsense_settings(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        Debouncer([ROOT], max_pending=0, clock=clock)


# --- roots changed at run time ------------------------------------------------------------------


def test_a_removed_root_drops_its_pending_changes_and_an_added_one_is_followed(clock: FakeClock) -> None:
    debouncer = make(clock, settle_ms=300)
    debouncer.add([file(ADDED, "/lib/a/x.mp4"), file(ADDED, "/other/b/y.mp4")])
    debouncer.set_roots([ROOT, "/new"])
    debouncer.add([file(ADDED, "/new/c/z.mp4"), file(ADDED, "/other/b/late.mp4")])
    clock.advance_ms(300)
    assert set(debouncer.take().targets) == {
        SyncTarget("/lib/a", recursive=False),
        SyncTarget("/new/c", recursive=False),
    }
    assert not debouncer.has_pending


def test_removing_the_only_pending_root_leaves_nothing_due(clock: FakeClock) -> None:
    debouncer = make(clock)
    debouncer.add([file(ADDED, "/other/b/y.mp4")])
    debouncer.set_roots([ROOT])
    assert debouncer.due_at() is None
    assert not debouncer.take()
