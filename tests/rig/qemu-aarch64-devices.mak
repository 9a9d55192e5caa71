# Devices of the series' aarch64 QEMU that L1 runs for L2 (built by
# scripts/rig/qemu-aarch64.sh, KVM only): the virt board with what L2's
# command lines use and nothing else.  --disable-tcg already drops every
# TCG-only board; the optional device groups go here, and what L2 needs is
# named one by one.

CONFIG_ARM_VIRT=y
CONFIG_PCI_DEVICES=n
CONFIG_I2C_DEVICES=n
CONFIG_TEST_DEVICES=n
CONFIG_NVDIMM=n

# pcie-root-port for the passed-through function, vfio-pci with iommufd
CONFIG_PCIE_PORT=y
CONFIG_VFIO_PCI=y
CONFIG_IOMMUFD=y
# pcie-pci-bridge (on with PCIE_PORT) calls pci_bridge_dev.c, which Kconfig
# builds only with PCI_BRIDGE (PCI_DEVICES' default): without it the link fails
CONFIG_PCI_BRIDGE=y

# virtio-iommu-pci (the DIRECT subtype) and a few virtio functions for L2
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_IOMMU=y
CONFIG_VIRTIO_RNG=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_NET=y
