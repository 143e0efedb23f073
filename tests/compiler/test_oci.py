"""The config.json facts of DESIGN §4, one rule per test."""

from __future__ import annotations

from extsvc.compiler import defaults
from tests.compiler.helpers import MINIMAL, config


def with_security(security: str) -> str:
    return MINIMAL.replace(
        "  entrypoint: /bin/svc\n", "  entrypoint: /bin/svc\n  security:\n" + security
    )


def test_args_are_the_entrypoint_verbatim_then_args() -> None:
    spec = config(MINIMAL.replace("/bin/svc", "./hello\n  args: [-f, $HOME]"))
    assert spec["process"]["args"] == ["./hello", "-f", "$HOME"]


def test_no_env_key_when_there_is_no_environment() -> None:
    assert "env" not in config(MINIMAL)["process"]


def test_environment_is_verbatim_with_duplicates_kept_and_bare_keys_dropped() -> None:
    spec = config(MINIMAL.replace("/bin/svc", "/bin/svc\n  environment: [A=1, B, A=2, P=$PATH]"))
    assert spec["process"]["env"] == ["A=1", "A=2", "P=$PATH"]


def test_rootfs_is_read_only_unless_writeable() -> None:
    assert config(MINIMAL)["root"] == {"path": "/usr/local/lib/containers/svc", "readonly": True}
    writeable = config(with_security("    writeableRootfs: true\n"))
    assert writeable["root"] == {"path": "/usr/local/lib/containers/svc"}


def test_rootfs_base_is_joined_without_doubling_slashes() -> None:
    assert config(MINIMAL, rootfs_base="/opt/ext/")["root"]["path"] == "/opt/ext/svc"


def test_absent_masked_and_readonly_paths_mean_containerd_defaults() -> None:
    linux = config(MINIMAL)["linux"]
    assert linux["maskedPaths"] == list(defaults.DEFAULT_MASKED_PATHS)
    assert linux["readonlyPaths"] == list(defaults.DEFAULT_READONLY_PATHS)


def test_empty_masked_and_readonly_paths_mean_none_and_the_keys_are_omitted() -> None:
    linux = config(with_security("    maskedPaths: []\n    readonlyPaths: []\n"))["linux"]
    assert "maskedPaths" not in linux and "readonlyPaths" not in linux


def test_null_masked_paths_mean_absent_as_in_go() -> None:
    linux = config(with_security("    maskedPaths:\n"))["linux"]
    assert linux["maskedPaths"] == list(defaults.DEFAULT_MASKED_PATHS)


def test_writeable_sysfs_flips_only_sysfs_typed_mounts() -> None:
    text = with_security("    writeableSysfs: true\n").replace(
        "  security:",
        "  mounts:\n"
        "    - {source: /sys, destination: /h, type: bind, options: [rbind, ro]}\n"
        "  security:",
    )
    mounts = {m["destination"]: m["options"] for m in config(text)["mounts"]}
    assert mounts["/sys"] == ["nosuid", "noexec", "nodev", "rw"]
    assert mounts["/h"] == ["rbind", "ro"]


def test_mounts_are_defaults_then_host_files_then_the_service_mounts_as_written() -> None:
    text = MINIMAL.replace(
        "/bin/svc",
        "/bin/svc\n  mounts:\n    - {source: /dev, destination: /dev, type: bind}\n"
        "    - {source: /dev, destination: /dev, type: bind}",
    )
    destinations = [m["destination"] for m in config(text)["mounts"]]
    assert destinations == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run",
        "/etc/hosts", "/etc/resolv.conf", "/dev", "/dev",
    ]  # fmt: skip


def test_a_mount_keeps_only_the_keys_it_was_given() -> None:
    text = MINIMAL.replace("/bin/svc", "/bin/svc\n  mounts:\n    - {destination: /x, options: []}")
    assert config(text)["mounts"][-1] == {"destination": "/x"}


def test_capabilities_are_the_39_grantable_ones_sorted_in_three_sets() -> None:
    capabilities = config(MINIMAL)["process"]["capabilities"]
    assert set(capabilities) == {"bounding", "effective", "permitted"}
    for names in capabilities.values():
        assert len(names) == 39 and names == sorted(names)
        assert "CAP_SYS_BOOT" not in names and "CAP_SYS_MODULE" not in names


def test_fixed_process_and_linux_fields() -> None:
    spec = config(MINIMAL)
    assert spec["ociVersion"] == "1.3.0"
    assert spec["process"]["oomScoreAdj"] == -600
    assert spec["process"]["noNewPrivileges"] is True
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}
    assert spec["linux"]["namespaces"] == [{"type": "pid"}, {"type": "uts"}, {"type": "mount"}]
    assert spec["linux"]["cgroupsPath"] == "/system/extensions/svc"
    assert spec["linux"]["resources"] == {"devices": [{"allow": True, "access": "rwm"}]}
    assert "rlimits" not in spec["process"] and "rootfsPropagation" not in spec["linux"]


def test_rootfs_propagation_is_passed_through() -> None:
    assert (
        config(with_security("    rootfsPropagation: rslave\n"))["linux"]["rootfsPropagation"]
        == "rslave"
    )


def test_seccomp_is_containerds_default_profile_for_the_arch() -> None:
    seccomp = config(MINIMAL)["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    assert len(seccomp["syscalls"]) == 23
