using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>The BPF file system, where pinned objects outlive the process that made them.</summary>
public static unsafe class BpfFs
{
    public const string DefaultMountPoint = "/sys/fs/bpf";
    private const long BpfFsMagic = 0xcafe4a11;

    public static bool IsMounted(string path = DefaultMountPoint)
    {
        var buffer = stackalloc long[16]; // struct statfs; f_type is the first field
        return LibC.Statfs(path, buffer) == 0 && buffer[0] == BpfFsMagic;
    }

    /// <summary>
    /// Makes sure bpffs is mounted at /sys/fs/bpf, mounting it (mode 0700) as bpftool and systemd do when it is not.
    /// </summary>
    public static void EnsureMounted()
    {
        if (IsMounted()) return;
        if (!Directory.Exists(DefaultMountPoint))
            throw new BpfilterException("BpffsUnavailable", FailureCategory.ResourceUnavailable,
                $"{DefaultMountPoint} does not exist, so the BPF file system cannot be mounted there (is /sys mounted?)");
        if (LibC.Mount("bpf", DefaultMountPoint, "bpf", 0, "mode=0700") != 0)
        {
            int errno = LibC.LastError;
            throw new BpfilterException("BpffsUnavailable", FailureCategory.ResourceUnavailable,
                $"the BPF file system is not mounted at {DefaultMountPoint} and mounting it failed with {KernelException.ErrnoName(errno)}"
                + (errno == 1 ? " (mounting needs CAP_SYS_ADMIN: run as root, or 'mount -t bpf bpf /sys/fs/bpf' first)" : ""));
        }
    }

    /// <summary>Renames a pin in one step (bpffs supports rename, replacing the target).</summary>
    public static void Rename(string from, string to)
    {
        if (LibC.Rename(from, to) != 0) throw new KernelException($"rename {from} to {to}", LibC.LastError);
    }
}
