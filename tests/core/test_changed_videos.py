"""VideoIds: the ids a job changed, kept up to a bound and then only counted."""

from __future__ import annotations

from gql_media.core.changed_videos import VideoIds


def test_ids_are_kept_up_to_the_limit_in_order() -> None:
    ids = VideoIds([5, 3], limit=4)
    ids.extend(iter([9, 3]))
    assert list(ids) == [5, 3, 9, 3] and len(ids) == 4 and not ids.many and ids


def test_past_the_limit_none_are_kept_and_more_are_counted() -> None:
    ids = VideoIds(range(3), limit=4)
    ids.extend(x for x in range(3, 6))
    assert ids.many and list(ids) == [] and len(ids) == 6
    ids.extend(range(10))
    assert ids.many and len(ids) == 16


def test_being_many_carries_over_to_the_collection_it_is_added_to() -> None:
    many = VideoIds(range(5), limit=2)
    few = VideoIds([1])
    few.extend(VideoIds([2, 3]))
    assert list(few) == [1, 2, 3] and not few.many
    few.extend(many)
    assert few.many and len(few) == 8


def test_an_empty_collection_is_false() -> None:
    assert not VideoIds() and len(VideoIds()) == 0 and not VideoIds().many
