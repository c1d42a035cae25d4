import pytest


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """The Hugging Face hub unreachable and its cache empty, whatever this machine has.

    Offline mode makes huggingface_hub fail at once instead of retrying a dead network.
    """
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    return tmp_path
