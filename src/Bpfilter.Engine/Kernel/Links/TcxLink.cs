using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Kernel.Links;

/// <summary>A TC program on one interface's ingress or egress through TCX (Linux 6.6+), first or last among the others.</summary>
public sealed class TcxLink : BpfLink
{
    private const uint AttachTypeIngress = 46, AttachTypeEgress = 47;
    private const uint FlagBefore = 8, FlagAfter = 16;

    private TcxLink(FileDescriptor fd) : base(fd) { }

    public static TcxLink Attach(LoadedProgram program, uint ifindex, string interfaceName, bool egress, TcxOrder order)
    {
        var direction = egress ? "egress" : "ingress";
        try
        {
            // BEFORE or AFTER without a relative program: the very first or the very last on the hook.
            return new TcxLink(Bpf.LinkCreate(program.Fd, ifindex, egress ? AttachTypeEgress : AttachTypeIngress,
                order == TcxOrder.First ? FlagBefore : FlagAfter, $"attach TCX {direction} to {interfaceName}"));
        }
        catch (KernelException e) when (e.Errno == 22)
        {
            throw new KernelException(e.Operation, e.Errno, "TCX needs Linux 6.6 or later", "HookUnsupported", FailureCategory.NotImplemented);
        }
    }
}
