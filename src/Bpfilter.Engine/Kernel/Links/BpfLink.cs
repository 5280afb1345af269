using System.Buffers.Binary;

namespace Bpfilter.Engine.Kernel.Links;

/// <summary>enum bpf_link_type values this module creates.</summary>
public enum LinkType : uint
{
    Cgroup = 3,
    Xdp = 6,
    Netfilter = 10,
    Tcx = 11,
}

/// <summary>What the kernel says about a link (struct bpf_link_info: type@0, id@4, prog_id@8, then per type).</summary>
/// <param name="Target">The ifindex for XDP and TCX (0 once the interface is gone); the priority for netfilter.</param>
public sealed record LinkInfo(LinkType Type, uint Id, uint ProgramId, int Target);

/// <summary>
/// A program attached through a BPF link. The link lives while an fd or a pin holds it; closing the last one
/// detaches. One subclass per attach kind knows how to create it.
/// </summary>
public class BpfLink : IDisposable
{
    protected BpfLink(FileDescriptor fd) => Fd = fd;

    public FileDescriptor Fd { get; }

    public static BpfLink? OpenPinned(string path) => Bpf.ObjGet(path) is { } fd ? new BpfLink(fd) : null;

    public void Pin(string path) => Bpf.ObjPin(Fd, path);

    /// <summary>
    /// Replaces the attached program in one step (XDP, TCX and cgroup links; netfilter links cannot), only if it
    /// still runs <paramref name="expectedCurrent"/> when that is given.
    /// </summary>
    public void Update(FileDescriptor nextProgram, FileDescriptor? expectedCurrent = null)
    {
        try
        {
            Bpf.LinkUpdate(Fd, nextProgram, expectedCurrent);
        }
        catch (KernelException e) when (e.Errno == 67)
        {
            throw new KernelException(e.Operation, e.Errno, "the link is defunct: its interface or cgroup was removed", "LinkDefunct",
                FailureCategory.ResourceUnavailable);
        }
    }

    public void Detach() => Bpf.LinkDetach(Fd);

    public LinkInfo Info()
    {
        Span<byte> info = stackalloc byte[64];
        info.Clear();
        Bpf.ObjGetInfo(Fd, info);
        var type = (LinkType)BinaryPrimitives.ReadUInt32LittleEndian(info);
        // xdp.ifindex@16, tcx.ifindex@16, netfilter {pf@16, hooknum@20, priority@24}, cgroup {cgroup_id@16 (u64)}.
        int target = type switch
        {
            LinkType.Netfilter => BinaryPrimitives.ReadInt32LittleEndian(info[24..]),
            LinkType.Cgroup => BinaryPrimitives.ReadUInt64LittleEndian(info[16..]) == 0 ? 0 : 1,
            _ => (int)BinaryPrimitives.ReadUInt32LittleEndian(info[16..]),
        };
        return new LinkInfo(type, BinaryPrimitives.ReadUInt32LittleEndian(info[4..]), BinaryPrimitives.ReadUInt32LittleEndian(info[8..]), target);
    }

    /// <summary>False once the interface or cgroup the link was attached to is gone (the link is then defunct).</summary>
    public bool IsAttached()
    {
        var info = Info();
        return info.Type == LinkType.Netfilter || info.Target != 0;
    }

    public void Dispose() => Fd.Dispose();
}
