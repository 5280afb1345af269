using Bpfilter.Engine.Compiler.Matchers;
using Bpfilter.Engine.Ebpf.Interpreter;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Simulation;

/// <summary>
/// Test-BpfPacket's -CtState and -CtDirection as what the interpreter's run sees (<see cref="ConntrackModel"/>). At the
/// netfilter hooks and tc-egress the packet carries the state itself (skb->_nfct). At xdp and tc-ingress the state is
/// what the program makes of a lookup: new means the lookup finds nothing, established a connection that has seen a
/// reply (or, in the reply direction, any), related a connection that another expected (or, for an ICMP error, the
/// connection it quotes); invalid and untracked are not lookup answers there but follow from the packet itself.
/// </summary>
public static class ConntrackSimulation
{
    public static ConntrackModel For(Hook hook, CtStates state, CtDirection? direction)
    {
        if (state is not (CtStates.New or CtStates.Established or CtStates.Related or CtStates.Invalid or CtStates.Untracked))
            throw Invalid($"-CtState takes one state ({string.Join(", ", CtStateNames.Names)}), not '{CtStateNames.Format(state)}'");
        if (state is CtStates.Invalid or CtStates.Untracked && direction is not null)
            throw Invalid($"a packet that is {CtStateNames.Format(state)} belongs to no connection, so it has no direction: leave out -CtDirection");
        if (state == CtStates.New && direction == CtDirection.Reply)
            throw Invalid("a new packet goes the original way: a connection's replies are established (or related)");
        bool reply = direction == CtDirection.Reply;
        switch (ConntrackMatcher.SourceOf(hook))
        {
            case ConntrackSource.Attached:
                ulong info = state switch
                {
                    CtStates.Established => 0UL,
                    CtStates.Related => 1UL,
                    CtStates.New => 2UL,
                    _ => 0UL,
                };
                return state switch
                {
                    CtStates.Invalid => ConntrackModel.None,
                    CtStates.Untracked => new ConntrackModel { SkbNfct = 7 },
                    _ => new ConntrackModel { SkbNfct = ConntrackModel.ConnectionAddress | (info + (reply ? 3UL : 0UL)) },
                };
            case ConntrackSource.Lookup:
                return state switch
                {
                    CtStates.New => ConntrackModel.None,
                    CtStates.Established => new ConntrackModel
                    {
                        Lookup = new ConntrackEntry(ConntrackEntry.Confirmed | ConntrackEntry.SeenReply | ConntrackEntry.Assured, reply ? (byte)1 : (byte)0),
                    },
                    CtStates.Related => new ConntrackModel { Lookup = new ConntrackEntry(ConntrackEntry.Confirmed | ConntrackEntry.Expected, reply ? (byte)1 : (byte)0) },
                    _ => throw Invalid($"at {hook.ToName()} a lookup never answers {CtStateNames.Format(state)}: a packet is "
                        + (state == CtStates.Invalid ? "invalid there when it is an ICMP error about a connection the kernel does not know"
                            : "untracked there when it is neither TCP nor UDP nor an ICMP error about either")
                        + ", whatever the connection table holds; test such a packet without -CtState"),
                };
            default:
                throw Invalid($"{hook.ToName()} knows no connection state (see about_Bpfilter_Stateful)");
        }
    }

    private static BpfilterException Invalid(string message) => new("CtStateInvalid", FailureCategory.InvalidArgument, message);
}
