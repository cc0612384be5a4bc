def test_a_run_holds_a_checkpoint_by_its_latest_pointer_or_any_step_folder(tmp_path):
    from lightgen.train.checkpoint import has_checkpoint

    assert not has_checkpoint(tmp_path)
    (tmp_path / "checkpoints" / "step-000010").mkdir(parents=True)
    assert has_checkpoint(tmp_path)  # no 'latest' yet: still never started over
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "checkpoints" / "latest").write_text("step-000001")
    assert has_checkpoint(other)
