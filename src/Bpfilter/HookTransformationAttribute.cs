using System.Management.Automation;
using Bpfilter.Engine.Rules;

namespace Bpfilter;

/// <summary>Lets -Hook take the YAML spelling ("nf-input", "tc-ingress") as well as the enum names.</summary>
public sealed class HookTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject ps ? ps.BaseObject : inputData;
        if (value is string text)
        {
            return HookNames.TryParse(text, out var hook) ? hook
                : throw new ArgumentTransformationMetadataException($"'{text}' is not a hook: use one of {string.Join(", ", HookNames.Names)}");
        }
        return value;
    }
}
