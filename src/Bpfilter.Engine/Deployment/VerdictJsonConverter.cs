using System.Text.Json;
using System.Text.Json.Serialization;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>
/// Writes a verdict into the manifest as its kind ("accept"), or as an object when it carries more
/// ({"kind":"jump","target":"LOGDROP"}), and reads both back.
/// </summary>
internal sealed class VerdictJsonConverter : JsonConverter<Verdict>
{
    public override Verdict Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        try
        {
            if (reader.TokenType == JsonTokenType.String) return Verdict.Parse(reader.GetString()!);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            string Text(string name) => root.TryGetProperty(name, out var value) ? value.GetString() ?? "" : "";
            return Text("kind") switch
            {
                "jump" => Verdict.Jump(Text("target")),
                "goto" => Verdict.Goto(Text("target")),
                "reject" => Verdict.Reject(RejectWithNames.Parse(Text("with"))),
                "log" => Verdict.Log(Text("prefix")),
                var kind => Verdict.Parse(kind),
            };
        }
        catch (RulesetValidationException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, Verdict value, JsonSerializerOptions options)
    {
        var kind = Verdict.Name(value.Kind);
        switch (value.Kind)
        {
            case VerdictKind.Jump or VerdictKind.Goto:
                writer.WriteStartObject();
                writer.WriteString("kind", kind);
                writer.WriteString("target", value.Target);
                writer.WriteEndObject();
                break;
            case VerdictKind.Reject when value.With != RejectWith.Default:
                writer.WriteStartObject();
                writer.WriteString("kind", kind);
                writer.WriteString("with", RejectWithNames.Format(value.With));
                writer.WriteEndObject();
                break;
            case VerdictKind.Log when value.LogPrefix is { Length: > 0 }:
                writer.WriteStartObject();
                writer.WriteString("kind", kind);
                writer.WriteString("prefix", value.LogPrefix);
                writer.WriteEndObject();
                break;
            default:
                writer.WriteStringValue(kind);
                break;
        }
    }
}
