"""The per-video cache reuses a value only under the stamp it was read with."""

from retrieval.video_cache import VideoCache


def test_values_are_reloaded_when_the_stamp_changes_and_missing_ones_cached_empty():
    calls = []

    def load(ids):
        calls.append(sorted(ids))
        return {vid: f"{vid}@{len(calls)}" for vid in ids if vid != "none"}

    cache = VideoCache(max_videos=10)
    assert cache.get_many({"a": 1, "b": 1, "none": 1}, load, "") == {
        "a": "a@1", "b": "b@1", "none": ""}
    assert cache.get_many({"a": 1, "none": 1}, load, "") == {"a": "a@1", "none": ""}
    assert calls == [["a", "b", "none"]]  # all three came from memory the second time
    assert cache.get_many({"a": 2, "b": 1}, load, "") == {"a": "a@2", "b": "b@1"}
    assert calls[-1] == ["a"]  # only the video whose stamp moved was read again


def test_the_least_recently_used_video_is_dropped_past_the_limit():
    loads = []
    cache = VideoCache(max_videos=2)

    def load(ids):
        loads.extend(ids)
        return {vid: vid for vid in ids}

    cache.get_many({"a": 0}, load, "")
    cache.get_many({"b": 0}, load, "")
    cache.get_many({"a": 0}, load, "")  # a is now the most recent
    cache.get_many({"c": 0}, load, "")  # drops b
    cache.get_many({"a": 0, "b": 0}, load, "")
    assert loads == ["a", "b", "c", "b"]
