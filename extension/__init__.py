"""System extensions as Talos ships them: OCI images laid onto a root filesystem.

``extsvc extension install`` reads an image (an OCI layout, an oci-archive, a
docker-archive or a plain directory with ``manifest.yaml`` and ``rootfs/``),
checks it as Talos does, and lays its ``rootfs/`` onto ``--root`` atomically;
``list`` and ``remove`` work from a record per installed extension.

The stages, pure ones apart from I/O (STYLE point 1):

* ``manifest`` (pure): ``manifest.yaml`` -> ``Manifest`` or located diagnostics.
* ``oci`` (pure): index, manifest and config JSON -> the layers to apply.
* ``members`` (pure): each layer member checked and turned into an action
  against an index of the tree built so far (whiteouts, links, Talos's rules).
* ``sources`` and ``streams`` (I/O): open a SOURCE, read its blobs with digests checked.
* ``unpack`` (I/O): carries out the actions in a private staging directory.
* ``store`` (I/O): records, the transaction journal, the atomic commit.
* ``install``: the API the CLI (``cli``, the only click module) calls.
* ``imagebuild``: writes images from a directory tree (tests, examples).
"""
