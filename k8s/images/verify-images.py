#!/usr/bin/env python3
"""Builds every service image against a local JRE base and runs each one, without a container runtime.

No registry or Docker daemon is needed (or reachable on the build machine), so this script:
  1. makes a base image tarball from this machine's JDK 17 and the libraries it needs;
  2. builds the images with `./mvnw -Pimages package -Dimage.base=tar://...` (the same Jib config
     that builds the real images on eclipse-temurin:17-jre);
  3. unpacks each OCI tarball layer by layer into a root filesystem and runs the image's own
     entrypoint there with chroot, as user 65532 (as the manifests do): the plain services must
     print their usage, the Quarkus apps must answer /q/health/live.
Needs root (chroot, mounting /proc) and python3. Usage: sudo k8s/images/verify-images.py
"""
import hashlib, json, os, shutil, subprocess, sys, tarfile, tempfile, time, urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES = {"tokenizer-stream": "usage", "feedback": "usage", "trainer": "usage", "ingest-gateway": 8090, "serving": 8000}
LIBS = ["libgomp.so.1", "libstdc++.so.6", "libgcc_s.so.1", "libnss_files.so.2"]


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def base_image(work):
    java_home = os.path.dirname(os.path.dirname(os.path.realpath(shutil.which("java"))))
    rootfs = os.path.join(work, "base-rootfs")
    shutil.copytree(java_home, os.path.join(rootfs, "opt/java/openjdk"), symlinks=False, ignore_dangling_symlinks=True)
    libs = set()
    out = subprocess.run(["bash", "-c", f"ldd {java_home}/bin/java {java_home}/lib/server/libjvm.so {java_home}/lib/*.so"],
                         capture_output=True, text=True).stdout
    libs.update(w for w in out.split() if w.startswith("/") and ".so" in w)
    libs.update(os.path.join("/lib/x86_64-linux-gnu", l) for l in LIBS)
    for lib in libs:
        if os.path.exists(lib):
            os.makedirs(rootfs + os.path.dirname(lib), exist_ok=True)
            shutil.copy(lib, rootfs + lib)
    os.makedirs(os.path.join(rootfs, "tmp"), mode=0o1777, exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    os.makedirs(os.path.join(rootfs, "etc"), exist_ok=True)
    with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
        f.write("nonroot:x:65532:65532::/tmp:/sbin/nologin\n")
    layer = os.path.join(work, "layer.tar")
    with tarfile.open(layer, "w") as t:
        t.add(rootfs, arcname=".")
    diff = hashlib.sha256(open(layer, "rb").read()).hexdigest()
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": ["PATH=/opt/java/openjdk/bin:/usr/bin:/bin", "JAVA_HOME=/opt/java/openjdk"]},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]}}
    json.dump(config, open(os.path.join(work, "config.json"), "w"))
    json.dump([{"Config": "config.json", "RepoTags": ["local/jre17:verify"], "Layers": ["layer.tar"]}],
              open(os.path.join(work, "manifest.json"), "w"))
    base = os.path.join(work, "base.tar")
    with tarfile.open(base, "w") as t:
        for name in ("manifest.json", "config.json", "layer.tar"):
            t.add(os.path.join(work, name), arcname=name)
    return base


def unpack(image_tar, rootfs):
    """Applies the image's layers in order (an OCI layout tarball, as Jib writes it); returns its config."""
    with tarfile.open(image_tar) as t:
        index = json.load(t.extractfile("index.json"))
        blob = lambda d: t.extractfile("blobs/sha256/" + d.split(":")[1])
        manifest = json.load(blob(index["manifests"][0]["digest"]))
        config = json.load(blob(manifest["config"]["digest"]))
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=blob(layer["digest"]), mode="r:*") as lt:
                lt.extractall(rootfs)
    return config["config"]


def run(name, expect, image_tar, work):
    rootfs = os.path.join(work, name)
    config = unpack(image_tar, rootfs)
    assert config.get("User") == "65532:65532", f"{name}: runs as {config.get('User')}"
    os.makedirs(os.path.join(rootfs, "proc"), exist_ok=True)
    sh("mount", "--bind", "/proc", os.path.join(rootfs, "proc"))
    try:
        env = {e.split("=", 1)[0]: e.split("=", 1)[1] for e in config.get("Env", [])}
        env.update({"JAVA_TOOL_OPTIONS": "-Xmx256m -XX:+UseSerialGC", "FLYWHEEL_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HOME": "/tmp",
                    "FLYWHEEL_SERVING_TOKENIZER": "cl100k_base"})
        cwd = config.get("WorkingDir") or "/"
        cmd = [shutil.which("chroot"), "--userspec=65532:65532", rootfs] + config["Entrypoint"]
        if expect == "usage":
            out = subprocess.run(cmd + ["--help"], env=env, capture_output=True, text=True, timeout=120)
            assert out.returncode == 0 and "Usage:" in out.stdout, f"{name}: {out.returncode}\n{out.stdout}\n{out.stderr}"
            print(f"{name}: entrypoint {' '.join(config['Entrypoint'])} --help -> usage, exit 0")
        else:
            p = subprocess.Popen(cmd, env=env, cwd=rootfs + cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                deadline = time.time() + 120
                while True:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{expect}/q/health/live", timeout=2) as r:
                            assert r.status == 200
                            print(f"{name}: entrypoint {' '.join(config['Entrypoint'])} -> /q/health/live 200")
                            break
                    except OSError:
                        assert p.poll() is None, f"{name} exited: " + p.stdout.read().decode()
                        assert time.time() < deadline, f"{name}: not live within 120 s"
                        time.sleep(1)
            finally:
                p.terminate()
                p.wait(60)
    finally:
        sh("umount", os.path.join(rootfs, "proc"))


def main():
    work = tempfile.mkdtemp(prefix="flywheel-images-")
    try:
        base = base_image(work)
        sh(os.path.join(ROOT, "mvnw"), "-B", "-q", "-Pimages", "package", "-DskipTests", "-Dimage.base=tar://" + base,
           "-pl", ",".join(SERVICES), "-am", cwd=ROOT)
        for name, expect in SERVICES.items():
            run(name, expect, os.path.join(ROOT, name, "target", "jib-image.tar"), work)
        print("every image built and ran")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
