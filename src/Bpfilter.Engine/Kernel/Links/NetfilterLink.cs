using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Kernel.Links;

/// <summary>
/// A netfilter hook of the calling thread's network namespace, for one address family. Netfilter links cannot
/// be updated: a replacement attaches at another priority, then the old link goes.
/// </summary>
public sealed class NetfilterLink : BpfLink
{
    public const uint FamilyIpv4 = 2, FamilyIpv6 = 10;

    private NetfilterLink(FileDescriptor fd) : base(fd) { }

    public static NetfilterLink Attach(LoadedProgram program, Hook hook, uint family, int priority)
    {
        uint hookNumber = hook switch
        {
            Hook.NfPrerouting => 0, Hook.NfInput => 1, Hook.NfForward => 2, Hook.NfOutput => 3, Hook.NfPostrouting => 4,
            _ => throw new ArgumentOutOfRangeException(nameof(hook), hook, "not a netfilter hook"),
        };
        var what = $"attach {hook.ToName()} ({(family == FamilyIpv4 ? "IPv4" : "IPv6")}) at priority {priority}";
        try
        {
            return new NetfilterLink(Bpf.LinkCreateNetfilter(program.Fd, family, hookNumber, priority, 0, what));
        }
        catch (KernelException e) when (e.Errno == 16)
        {
            throw new KernelException(e.Operation, e.Errno,
                $"another BPF program already runs at {hook.ToName()} priority {priority}: give this chain another priority", "PriorityBusy", FailureCategory.ResourceBusy);
        }
    }
}
