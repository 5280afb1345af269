using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel.Links;

/// <summary>A cgroup_skb program on a cgroup v2 directory, for the sockets of the processes in it.</summary>
public sealed class CgroupLink : BpfLink
{
    private CgroupLink(FileDescriptor fd) : base(fd) { }

    public static CgroupLink Attach(LoadedProgram program, string cgroupDirectory, bool egress)
    {
        int dir = LibC.Open(cgroupDirectory, LibC.ORdOnly | LibC.ODirectory | LibC.OCloexec, 0);
        if (dir < 0)
        {
            int errno = LibC.LastError;
            throw errno == 2
                ? new BpfilterException("CgroupNotFound", FailureCategory.ObjectNotFound, $"there is no cgroup directory {cgroupDirectory}")
                : new KernelException($"open cgroup {cgroupDirectory}", errno);
        }
        using var fd = new FileDescriptor(dir);
        return new CgroupLink(Bpf.LinkCreate(program.Fd, (uint)fd.Value, egress ? 1u : 0u, 0,
            $"attach cgroup {(egress ? "egress" : "ingress")} to {cgroupDirectory}"));
    }
}
